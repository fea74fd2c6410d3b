"""Account pages: sign up, and the account page with API tokens."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import UserCreationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from . import services
from .models import ApiToken


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    form = UserCreationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("home")
    return render(request, "registration/signup.html", {"form": form})


@login_required
@require_http_methods(["GET", "POST"])
def account(request: HttpRequest) -> HttpResponse:
    new_token = None
    if request.method == "POST":
        if "revoke" in request.POST:
            token_id = request.POST["revoke"]
            # ASCII digits only: "²".isdigit() is true, and int("²") fails.
            if (token_id.isascii() and token_id.isdigit() and len(token_id) < 10
                    and services.revoke_token(user=request.user, token_id=int(token_id))):
                messages.success(request, "Token revoked.")
            else:
                messages.error(request, "No such token: nothing was revoked.")
            return redirect("account")
        _, new_token = services.issue_token(user=request.user,
                                            name=request.POST.get("name", "").strip())
    tokens = ApiToken.objects.filter(user=request.user, revoked_at__isnull=True)
    return render(request, "accounts/account.html", {"tokens": tokens, "new_token": new_token})
