"""Phone numbers: parsing to E.164, their country, and masking for display."""

import phonenumbers

from coffeeshop.countries import COUNTRY_NAMES

VISIBLE_DIGITS = 4
# Numbers whose owner is paid when they are called or texted.
PAID_TO_RECEIVE = {
    phonenumbers.PhoneNumberType.PREMIUM_RATE,
    phonenumbers.PhoneNumberType.SHARED_COST,
}


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
    # Texts to these cost the sender, and paid-for traffic to them is how SMS pumping pays.
    if phonenumbers.number_type(number) in PAID_TO_RECEIVE:
        raise InvalidPhoneNumber("This is a premium-rate number: enter a mobile number.")
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


def phone_region(e164: str) -> str | None:
    """The ISO 3166 code of the country a number belongs to: "GB" for +44 7700 900123."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return None
    region = phonenumbers.region_code_for_number(number)
    if region in (None, phonenumbers.UNKNOWN_REGION):
        # A number possible but not (yet) assigned: the country code's main country.
        region = phonenumbers.region_code_for_country_code(number.country_code)
    return None if region == phonenumbers.UNKNOWN_REGION else region


# Country names read with "the" in a sentence, besides the United ..., ... Islands and ... Republic.
NAMES_WITH_THE = {
    "Bahamas",
    "Comoros",
    "Gambia",
    "Isle Of Man",
    "Maldives",
    "Netherlands",
    "Philippines",
    "Seychelles",
    "Vatican",
}


def country_name_in_sentence(region: str) -> str:
    """The country's name as it reads mid-sentence: "the United Kingdom", "Ireland"."""
    name = COUNTRY_NAMES.get(region.upper(), region)
    if name.startswith("The "):
        return "the " + name.removeprefix("The ")
    if (
        name in NAMES_WITH_THE
        or name.startswith("United ")
        or name.endswith((" Islands", " Republic"))
    ):
        return "the " + name
    return name


def phone_region_is_known(region: str) -> bool:
    return region.upper() in phonenumbers.SUPPORTED_REGIONS


def phone_region_allowed(e164: str, allowed: list[str]) -> bool:
    """Whether the number's country is one of `allowed` (every country when it is empty)."""
    return not allowed or phone_region(e164) in {region.upper() for region in allowed}


def phone_region_refusal_text(allowed: list[str]) -> str:
    """What a person is told about a number from another country."""
    return f"We can only text numbers in {phone_regions_text(allowed)}."


def phone_regions_text(regions: list[str]) -> str:
    """Country names for people: "the United Kingdom, Ireland and France"."""
    names = [country_name_in_sentence(region) for region in regions]
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + " and " + names[-1]
