"""Account pages: sign up, log in (both throttled), and the account page with API tokens."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm, UserCreationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from . import services, throttles
from .models import ApiToken

View = Callable[..., HttpResponse]


def next_path(request: HttpRequest) -> str:
    """Where a sign-up or log-in page was asked to go next (`next`, posted or in the query),
    if that stays on this site; "" otherwise. Anything else would be an open redirect: a
    link to our sign-up page that lands a new user on a look-alike site."""
    wanted = str(request.POST.get("next") or request.GET.get("next") or "")
    safe = url_has_allowed_host_and_scheme(wanted, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure())
    return wanted if safe else ""


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    form = UserCreationForm(request.POST or None)
    context = {"next": next_path(request)}
    if request.method != "POST":
        return render(request, "registration/signup.html", {"form": form, **context})
    attempt = throttles.signup_attempt(address=throttles.client_address(request.META))
    if attempt.refused is not None:
        # A fresh form: checking this one would be the work the refusal saves.
        again = UserCreationForm(initial={"username": request.POST.get("username", "")})
        refused = throttles.refusal("too many accounts were made from here", attempt.refused)
        return throttled(render(request, "registration/signup.html",
                                {"form": again, "refused": refused, **context}),
                         attempt.refused)
    if not form.is_valid():
        attempt.succeeded()  # only accounts made count, not typos in the form
        return render(request, "registration/signup.html", {"form": form, **context})
    user = form.save()
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    return redirect(context["next"] or "home")


def login_throttled(view: View) -> View:
    """A login page (ours, the admin's) refused, with 429 and the reason, after too many
    failed logins for the account or from the client's address."""

    @wraps(view)
    def throttled_view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method != "POST":
            return view(request, *args, **kwargs)
        username = str(request.POST.get("username", ""))
        attempt = throttles.login_attempt(username=username,
                                          address=throttles.client_address(request.META))
        if attempt.refused is not None:
            # A fresh form: the posted one would check the password when shown.
            form = AuthenticationForm(request, initial={"username": username})
            refused = throttles.refusal("too many failed logins", attempt.refused)
            return throttled(render(request, "registration/login.html",
                                    {"form": form, "refused": refused,
                                     "next": next_path(request)}), attempt.refused)
        response = view(request, *args, **kwargs)
        if response.status_code == 302 and request.user.is_authenticated:
            attempt.succeeded()  # logged in: a success does not count
        return response

    return throttled_view


login_page = login_throttled(auth_views.LoginView.as_view())


def throttled(response: HttpResponse, wait: int) -> HttpResponse:
    response.status_code = 429
    response["Retry-After"] = str(wait)
    return response


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
