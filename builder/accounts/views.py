"""Account pages: sign up, log in (both throttled), and the account page with API tokens."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm, UserCreationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from . import services, throttles
from .models import ApiToken


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    form = UserCreationForm(request.POST or None)
    if request.method != "POST":
        return render(request, "registration/signup.html", {"form": form})
    attempt = throttles.signup_attempt(address=throttles.client_address(request.META))
    if attempt.refused is not None:
        # A fresh form: checking this one would be the work the refusal saves.
        again = UserCreationForm(initial={"username": request.POST.get("username", "")})
        refused = throttles.refusal("too many accounts were made from here", attempt.refused)
        return throttled(render(request, "registration/signup.html",
                                {"form": again, "refused": refused}), attempt.refused)
    if not form.is_valid():
        attempt.succeeded()  # only accounts made count, not typos in the form
        return render(request, "registration/signup.html", {"form": form})
    user = form.save()
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    return redirect("home")


class LoginView(auth_views.LoginView):
    """Django's login page, refused (429, with the form and the reason) after too many
    failed logins for the account or from the client's address."""

    def post(self, request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        username = str(request.POST.get("username", ""))
        self.attempt = throttles.login_attempt(
            username=username, address=throttles.client_address(request.META))
        if self.attempt.refused is None:
            return super().post(request, *args, **kwargs)
        # A fresh form: the bound one would check the password when shown.
        form = AuthenticationForm(request, initial={"username": username})
        refused = throttles.refusal("too many failed logins", self.attempt.refused)
        return throttled(self.render_to_response(self.get_context_data(
            form=form, refused=refused)), self.attempt.refused)

    def form_valid(self, form: AuthenticationForm) -> HttpResponse:
        self.attempt.succeeded()
        return super().form_valid(form)


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
            if token_id.isdigit() and len(token_id) < 10 and services.revoke_token(
                    user=request.user, token_id=int(token_id)):
                messages.success(request, "Token revoked.")
            return redirect("account")
        _, new_token = services.issue_token(user=request.user,
                                            name=request.POST.get("name", "").strip())
    tokens = ApiToken.objects.filter(user=request.user, revoked_at__isnull=True)
    return render(request, "accounts/account.html", {"tokens": tokens, "new_token": new_token})
