"""The signup page: the same service as the API, behind a form."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from coffeeshop.temporal import TemporalUnavailable
from customers import services
from customers.forms import SignupForm

TEMPLATE = "customers/signup.html"
RETRY_AFTER_SECONDS = 30


@require_http_methods(["GET", "POST"])
def customer_signup(request: HttpRequest) -> HttpResponse:
    """Show the form; on a valid POST sign the customer up and go to the code-entry page."""
    if request.method != "POST":
        return render(request, TEMPLATE, {"form": SignupForm.blank()})

    form = SignupForm(request.POST)
    if not form.is_valid():
        return render(request, TEMPLATE, {"form": form})
    data = form.cleaned_data
    try:
        customer, _ = services.customer_sign_up(
            first_name=data["first_name"],
            last_name=data["last_name"],
            email=data["email"],
            phone_number=data["phone_number"],
            request_id=data["request_id"] or None,
        )
    except services.RequestIdConflict:
        # The back button brought this form back and its entries were changed: make sure the
        # person means a second signup before creating one.
        form = form.with_fresh_request_id()
        form.is_valid()
        form.add_error(
            None,
            "This form was already used to sign up. Check the details and send it again "
            "to sign up with them.",
        )
        return render(request, TEMPLATE, {"form": form}, status=409)
    except TemporalUnavailable:
        # Same request_id on retry: the customer is created once and verification starts then.
        response = render(request, TEMPLATE, {"form": form, "unavailable": True}, status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    return redirect("pages:verify", customer_id=customer.id)
