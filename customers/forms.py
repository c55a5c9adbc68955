"""The signup page's form. Its rules are the API's: CustomerInputSerializer decides."""

from django import forms

from coffeeshop.web.forms import PageForm
from customers.serializers import NAME_MAX_LENGTH, REQUEST_ID_MAX_LENGTH, CustomerInputSerializer
from customers.validators import validate_no_control_characters

CUSTOMER_FIELDS = ("first_name", "last_name", "email", "phone_number")
# Rules whose message does not say which field it is about: the page's words name the field, so
# that the error summary reads on its own.
FIELD_MESSAGES = {"control": "{label} cannot contain control characters, such as line breaks."}


class SignupForm(PageForm):
    """First name, last name, email and phone, plus the request_id that makes a resubmit safe.

    A request_id it refuses (changed by hand) is replaced by its `initial` one.
    """

    first_name = forms.CharField(
        label="First name",
        max_length=NAME_MAX_LENGTH,
        error_messages={
            "required": "Enter your first name.",
            "max_length": "First name must be %(limit_value)d characters or fewer.",
        },
        widget=forms.TextInput(attrs={"autocomplete": "given-name", "spellcheck": "false"}),
    )
    last_name = forms.CharField(
        label="Last name",
        max_length=NAME_MAX_LENGTH,
        error_messages={
            "required": "Enter your last name.",
            "max_length": "Last name must be %(limit_value)d characters or fewer.",
        },
        widget=forms.TextInput(attrs={"autocomplete": "family-name", "spellcheck": "false"}),
    )
    email = forms.CharField(
        label="Email address",
        max_length=254,
        error_messages={
            "required": "Enter your email address.",
            "max_length": "Email address must be %(limit_value)d characters or fewer.",
        },
        widget=forms.EmailInput(attrs={"autocomplete": "email", "spellcheck": "false"}),
    )
    phone_number = forms.CharField(
        label="Mobile phone number",
        max_length=32,
        help_text="We will text a code to this number, for example 07700 900123.",
        error_messages={
            "required": "Enter your mobile phone number.",
            "max_length": "Mobile phone number must be %(limit_value)d characters or fewer.",
        },
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "tel", "inputmode": "tel"}),
    )
    request_id = forms.CharField(
        max_length=REQUEST_ID_MAX_LENGTH,
        widget=forms.HiddenInput,
        required=False,
        validators=[validate_no_control_characters],
    )

    @classmethod
    def blank(cls, *, request_id: str) -> "SignupForm":
        """An empty form carrying the given request_id."""
        return cls(initial={"request_id": request_id})

    def clean(self) -> dict:
        cleaned = super().clean()
        given = {name: cleaned[name] for name in CUSTOMER_FIELDS if name in cleaned}
        serializer = CustomerInputSerializer(data=given)
        if serializer.is_valid():
            cleaned.update(serializer.validated_data)
            return cleaned
        for name, errors in serializer.errors.items():
            if name in given:  # a field Django already refused has its message
                for error in errors:
                    self.add_error(name, self._field_message(name, error))
        return cleaned

    def _field_message(self, name: str, error) -> str:
        words = FIELD_MESSAGES.get(getattr(error, "code", ""))
        return words.format(label=self.fields[name].label) if words else str(error)
