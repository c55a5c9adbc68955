"""The code-entry page's form."""

import unicodedata
import uuid

from django import forms
from django.utils.crypto import salted_hmac

from coffeeshop.web.forms import PageForm
from verification.codes import MAX_CODE_LENGTH, MIN_CODE_LENGTH, code_is_well_formed

SUBMIT_KEY_SALT = "coffeeshop.verification.page-submit"
CODE_SEPARATORS = str.maketrans("", "", " -\u00a0")


class CodeForm(PageForm):
    """One code, plus a key minted for each page render so a double submit counts once."""

    code = forms.CharField(
        label="Verification code",
        max_length=32,
        error_messages={"required": "Enter the code we sent you."},
        widget=forms.TextInput(
            attrs={
                "inputmode": "numeric",
                "autocomplete": "one-time-code",
                "autocapitalize": "off",
                "spellcheck": "false",
                "class": "code-input",
            }
        ),
    )
    # A new key for each render: a blank form's, and one that replaces a key it refused. Required:
    # a submit without one would have no double-submit protection.
    form_key = forms.UUIDField(widget=forms.HiddenInput, initial=uuid.uuid4)

    @classmethod
    def blank(cls) -> "CodeForm":
        return cls()

    def mark_code_refused(self, *, described_by: str) -> None:
        """Mark the code input invalid, described by the element (a notice) saying why."""
        self.fields["code"].widget.attrs.update(
            {"aria-invalid": "true", "aria-describedby": described_by}
        )

    def clean_code(self) -> str:
        # Digits as a phone's keyboard may type them: full-width, Arabic-Indic, and so on.
        code = "".join(
            str(unicodedata.decimal(char)) if char.isdecimal() else char
            for char in self.cleaned_data["code"].translate(CODE_SEPARATORS)
        )
        if not code_is_well_formed(code):
            raise forms.ValidationError(
                f"Enter the code using digits only: it has {MIN_CODE_LENGTH} to "
                f"{MAX_CODE_LENGTH} digits."
            )
        return code

    def idempotency_key(self) -> str | None:
        """The same page and the same code give the same key; another code, another key.

        So a double submit is counted once, while a page brought back by the back button still
        counts a different code as a new attempt. Keyed, so the key does not reveal the code.
        """
        form_key = self.cleaned_data.get("form_key")
        if form_key is None:
            return None
        digest = salted_hmac(SUBMIT_KEY_SALT, f"{form_key}:{self.cleaned_data['code']}")
        return f"page-{form_key}-{digest.hexdigest()[:16]}"
