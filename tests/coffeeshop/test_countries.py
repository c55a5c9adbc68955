"""The country names copied from phonenumbers' geocoder still agree with it, and read well."""

import phonenumbers
import pytest
from phonenumbers import geocoder

from coffeeshop.countries import COUNTRY_NAMES
from coffeeshop.phones import country_name_in_sentence, phone_regions_text


def test_every_region_phonenumbers_knows_has_the_geocoders_name():
    for region in phonenumbers.SUPPORTED_REGIONS:
        example = phonenumbers.example_number(region)
        name = geocoder.country_name_for_number(example, "en") if example else ""
        assert COUNTRY_NAMES[region] == (name or COUNTRY_NAMES[region]), region
    assert set(COUNTRY_NAMES) == phonenumbers.SUPPORTED_REGIONS


@pytest.mark.parametrize(
    ("region", "reads"),
    [
        ("GB", "the United Kingdom"),
        ("US", "the United States"),
        ("NL", "the Netherlands"),
        ("KY", "the Cayman Islands"),
        ("CZ", "the Czech Republic"),
        ("CD", "the Democratic Republic Of Congo"),
        ("IE", "Ireland"),
        ("CX", "Christmas Island"),
    ],
)
def test_a_country_reads_with_the_article_it_takes_in_a_sentence(region, reads):
    assert country_name_in_sentence(region) == reads


def test_a_list_of_countries_reads_as_a_sentence():
    assert (
        phone_regions_text(["gb", "IE", "US"])
        == "the United Kingdom, Ireland and the United States"
    )
