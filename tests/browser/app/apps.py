from django.apps import AppConfig


class BrowserShopConfig(AppConfig):
    """The handlers of the browser tests (``tests.browser.settings`` installs it; the rest of the suite does not)."""

    name = "tests.browser.app"
    label = "kbbrowsershop"
