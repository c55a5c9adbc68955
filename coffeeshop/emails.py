"""Email addresses: masked for pages, logs and anything else a stranger might read."""


def email_mask(email: str) -> str:
    """An address with all but the first letter of its local part hidden: `a•••@example.com`."""
    local, at, domain = email.rpartition("@")
    if not at:
        return "•••"
    return f"{local[:1]}•••@{domain}"
