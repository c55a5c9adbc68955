"""Where and how to reach Temporal, read from the SDK's environment configuration.

Only `settings.py` calls this, once, at startup: the rest of the app reads the Django settings it
fills in. No Django imports.
"""

from collections.abc import Mapping
from pathlib import Path

from temporalio.envconfig import ClientConfigProfile


class TemporalConfigError(ValueError):
    """The Temporal configuration names a file that is not there or a profile not in it, or
    gives half of a client certificate."""


# The words the SDK reads TEMPORAL_TLS by; any other it takes as true.
TLS_SWITCH_WORDS = frozenset({"true", "1", "false", "0"})


def temporal_profile_load(environ: Mapping[str, str]) -> ClientConfigProfile:
    """The connection profile the `TEMPORAL_*` variables in `environ` describe.

    Each variable overrides its field of a TOML profile, TEMPORAL_PROFILE in TEMPORAL_CONFIG_FILE,
    and the file is read only when one of those two is set: a developer's own `temporal config`
    profile never redirects `make run` or the tests. Empty (or blank) variables count as unset.
    """
    variables = {k: v for k, v in environ.items() if k.startswith("TEMPORAL_") and v.strip()}
    tls_switch = variables.get("TEMPORAL_TLS", "true").strip().lower()
    if tls_switch not in TLS_SWITCH_WORDS:
        # The SDK takes any word but its few for false as true: "off" would turn TLS on.
        raise TemporalConfigError(
            f"TEMPORAL_TLS is true or false, not {variables['TEMPORAL_TLS']!r}."
        )
    if "TEMPORAL_TLS" in variables:
        variables["TEMPORAL_TLS"] = tls_switch
    profile = variables.get("TEMPORAL_PROFILE")
    config_file = variables.get("TEMPORAL_CONFIG_FILE")
    if config_file and not Path(config_file).is_file():
        raise TemporalConfigError(f"TEMPORAL_CONFIG_FILE names no file: {config_file}")
    try:
        loaded = ClientConfigProfile.load(
            profile, disable_file=not (profile or config_file), override_env_vars=variables
        )
    except Exception as exc:  # the SDK's ConfigError: a profile not in the file, bad TOML
        raise TemporalConfigError(f"Temporal client configuration: {exc}") from exc
    tls = loaded.tls
    if tls is not None and (tls.client_cert is None) != (tls.client_private_key is None):
        # The SDK would refuse it at the first connection, in every request and the worker.
        given, missing = ("certificate", "key") if tls.client_cert else ("key", "certificate")
        raise TemporalConfigError(
            f"Temporal client configuration: a client {given} without its {missing}; set both "
            "TEMPORAL_TLS_CLIENT_CERT_PATH (or _DATA) and TEMPORAL_TLS_CLIENT_KEY_PATH (or "
            "_DATA), or neither."
        )
    return loaded
