from django.apps import AppConfig


class VerificationConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "verification"

    def ready(self) -> None:
        from verification import checks  # noqa: F401 - registers the system checks
