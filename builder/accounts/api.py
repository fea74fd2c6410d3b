"""API tokens over REST: issue one with a username and password, list and revoke yours."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import services, throttles
from .models import ApiToken


class TokenIn(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField()
    name = serializers.CharField(max_length=100, required=False, allow_blank=True,
                                 help_text="A label, to tell your tokens apart.")


class TokenOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    prefix = serializers.CharField()
    created_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(allow_null=True)


class TokenCreatedOut(TokenOut):
    token = serializers.CharField(help_text="Shown once: only a hash is kept.")


def token_data(token: ApiToken) -> dict[str, Any]:
    return {"id": token.id, "name": token.name, "prefix": token.prefix,
            "created_at": token.created_at.isoformat(),
            "last_used_at": token.last_used_at.isoformat() if token.last_used_at else None}


class TokenCreateView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list[type] = []
    throttle_classes: list[type] = []  # throttles.login_attempt counts these

    @extend_schema(operation_id="auth_token", request=TokenIn,
                   responses={201: TokenCreatedOut, 401: OpenApiResponse(description="wrong "
                              "username or password"),
                              429: OpenApiResponse(description="too many failed logins for "
                                                   "this account or from this address; "
                                                   "Retry-After says when to try again")})
    def post(self, request: Request) -> Response:
        body = TokenIn(data=request.data)
        body.is_valid(raise_exception=True)
        attempt = throttles.login_attempt(username=body.validated_data["username"],
                                          address=throttles.client_address(request.META))
        if attempt.refused is not None:
            return Response({"error": throttles.refusal("too many failed logins",
                                                        attempt.refused),
                             "retry_after": attempt.refused},
                            status=status.HTTP_429_TOO_MANY_REQUESTS,
                            headers={"Retry-After": str(attempt.refused)})
        user = authenticate(request._request, username=body.validated_data["username"],
                            password=body.validated_data["password"])
        if user is None:
            return Response({"error": "wrong username or password"},
                            status=status.HTTP_401_UNAUTHORIZED)
        attempt.succeeded()
        token, raw = services.issue_token(user=user, name=body.validated_data.get("name", ""))
        return Response({**token_data(token), "token": raw}, status=status.HTTP_201_CREATED)


class TokenListView(APIView):
    @extend_schema(operation_id="auth_tokens_list", responses={200: TokenOut(many=True)})
    def get(self, request: Request) -> Response:
        tokens = ApiToken.objects.filter(user=request.user, revoked_at__isnull=True)
        return Response([token_data(t) for t in tokens])


class TokenDetailView(APIView):
    @extend_schema(operation_id="auth_tokens_revoke", responses={204: None, 404: None})
    def delete(self, request: Request, token_id: int) -> Response:
        if not services.revoke_token(user=request.user, token_id=token_id):
            return Response({"error": "no such live token"}, status=status.HTTP_404_NOT_FOUND)
        return Response(status=status.HTTP_204_NO_CONTENT)
