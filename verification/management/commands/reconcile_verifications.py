"""`manage.py reconcile_verifications`: one reconciliation pass, now, by hand."""

import asyncio
from datetime import timedelta

from django.core.management.base import BaseCommand

from coffeeshop.temporal.client import temporal_connect
from verification.reconciliation import verifications_reconcile


class Command(BaseCommand):
    help = (
        "Record the real outcome of every pending verification whose run has closed (the worker's "
        "schedule does this every VERIFICATION_RECONCILE_INTERVAL seconds)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--settle-seconds",
            type=int,
            default=10,
            help="Leave rows younger than this alone (their runs are surely still running).",
        )

    def handle(self, *args, settle_seconds: int, **options):
        async def reconcile() -> int:
            client = await temporal_connect()
            return await verifications_reconcile(
                client=client, settle_time=timedelta(seconds=settle_seconds)
            )

        reconciled = asyncio.run(reconcile())
        self.stdout.write(f"Reconciled {reconciled} verification(s).")
