"""Set up the embedded demo: sample bars, demo strategies and a demo login.

`make run` calls this after `migrate`; running it again changes nothing.
"""

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo-password"


class Command(BaseCommand):
    help = "Load the bundled sample data, the demo strategies and a demo trader login."

    def handle(self, *args, **options):
        call_command("load_sample", stdout=self.stdout)
        call_command("create_demo_strategies", stdout=self.stdout)
        user, created = get_user_model().objects.get_or_create(
            username=DEMO_USERNAME, defaults={"is_staff": True, "is_superuser": True}
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save()
            self.stdout.write(f"created demo login {DEMO_USERNAME} / {DEMO_PASSWORD}")
        else:
            self.stdout.write(f"demo login {DEMO_USERNAME} exists")
