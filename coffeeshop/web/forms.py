"""What every page's form shares: an error in a hidden field is told as the form's own."""

from django import forms

# Nobody types into a hidden field: a value it refuses was changed by hand or left by an old page.
HIDDEN_FIELD_MESSAGE = "The form was changed or has expired. Please send it again."


class PageForm(forms.Form):
    """A form on a page, whose hidden fields' errors reach the error summary.

    The summary lists the form's own errors and those of the fields a person can see and correct.
    An error in a hidden field becomes one error of the form, in `HIDDEN_FIELD_MESSAGE`, and the
    field is given its initial value back in place of the refused one, so that the page rendered
    again can be sent again.
    """

    def clean(self) -> dict:
        cleaned = super().clean()
        refused = [field for field in self.hidden_fields() if field.name in self._errors]
        if refused:
            data = self.data.copy()
            for field in refused:
                del self._errors[field.name]
                initial = self.get_initial_for_field(field.field, field.name)
                data[field.html_name] = "" if initial is None else str(initial)
            self.data = data
            self.add_error(None, HIDDEN_FIELD_MESSAGE)
        return cleaned
