"""The country names copied from phonenumbers' geocoder still agree with it."""

import phonenumbers
from phonenumbers import geocoder

from coffeeshop.countries import COUNTRY_NAMES


def test_every_region_phonenumbers_knows_has_the_geocoders_name():
    for region in phonenumbers.SUPPORTED_REGIONS:
        example = phonenumbers.example_number(region)
        name = geocoder.country_name_for_number(example, "en") if example else ""
        assert COUNTRY_NAMES[region] == (name or COUNTRY_NAMES[region]), region
    assert set(COUNTRY_NAMES) == phonenumbers.SUPPORTED_REGIONS
