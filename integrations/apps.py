from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _create_sweep_schedule(sender, **kwargs):
    from integrations.writeback.tasks import ensure_sweep_schedule

    ensure_sweep_schedule()


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Marketo integration"

    def ready(self):
        # The sweep schedule lives in django-q2's table, so it is created
        # after migrations rather than by hand on every installation.
        post_migrate.connect(_create_sweep_schedule, sender=self)
