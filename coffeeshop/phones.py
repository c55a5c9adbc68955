"""Phone numbers: parsing to E.164 and masking for display."""

import phonenumbers

VISIBLE_DIGITS = 4


class InvalidPhoneNumber(ValueError):
    pass


def phone_normalize(raw: str, *, region: str) -> str:
    """Return `raw` in E.164 form, or raise InvalidPhoneNumber."""
    text = raw.strip()
    if not text or any(ch.isalpha() for ch in text):
        raise InvalidPhoneNumber("Enter a phone number using digits only.")
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumber("Enter a valid phone number.") from exc
    # IS_POSSIBLE only: a number dialable just locally ("0770") cannot receive our texts.
    reason = phonenumbers.is_possible_number_with_reason(number)
    if reason != phonenumbers.ValidationResult.IS_POSSIBLE:
        raise InvalidPhoneNumber("This phone number has the wrong number of digits.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_mask(e164: str) -> str:
    """Hide all but the last four digits, keeping the usual grouping: `+44 •••• ••2380`."""
    try:
        number = phonenumbers.parse(e164, None)
        text = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
        prefix = f"+{number.country_code}"
    except phonenumbers.NumberParseException:
        text, prefix = e164, ""
    body = text.removeprefix(prefix)
    digits_left = sum(ch.isdigit() for ch in body)
    masked = []
    for ch in body:
        if ch.isdigit():
            masked.append(ch if digits_left <= VISIBLE_DIGITS else "•")
            digits_left -= 1
        else:
            masked.append(ch)
    return prefix + "".join(masked)
