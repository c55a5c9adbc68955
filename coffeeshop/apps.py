"""Django's admin, on the site of `coffeeshop.web.admin_site`."""

from django.contrib.admin.apps import AdminConfig


class CoffeeshopAdminConfig(AdminConfig):
    default_site = "coffeeshop.web.admin_site.CoffeeshopAdminSite"
