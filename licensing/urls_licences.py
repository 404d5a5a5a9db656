"""Routes of licences and payments: the Stripe webhook, the public key, the pages."""

from django.urls import path

from licensing import views_licences as pages
from licensing import webhooks
from licensing.api.licence_views import PublicKeyView

urlpatterns = [
    path("stripe/webhook/", webhooks.stripe_webhook, name="stripe_webhook"),
    path(".well-known/blanket-licence-key", PublicKeyView.as_view(), name="licence_public_key"),
    path("licences/", pages.licence_list, name="licences"),
    path("licences/products/", pages.product_list, name="licence_products"),
    path("licences/products/<int:pk>/edit/", pages.product_edit, name="licence_product_edit"),
    path("licences/quote/", pages.quote_calculator, name="licence_quote"),
    path("licences/quotes/<int:pk>/accept/", pages.quote_accept, name="licence_quote_accept"),
    path("licences/<int:pk>/", pages.licence_detail, name="licence_detail"),
    path("licences/<int:pk>/pay/card/", pages.licence_pay_card, name="licence_pay_card"),
    path("licences/<int:pk>/pay/invoice/", pages.licence_pay_invoice, name="licence_pay_invoice"),
    path("licences/<int:pk>/paid/", pages.licence_paid, name="licence_paid"),
    path(
        "licences/<int:pk>/offline-payment/",
        pages.licence_offline_payment,
        name="licence_offline_payment",
    ),
    path(
        "licences/<int:pk>/certificate.<str:fmt>",
        pages.certificate_download,
        name="licence_certificate",
    ),
    path("payments/<int:pk>/refund/", pages.payment_refund, name="payment_refund"),
    path("ledger/", pages.ledger, name="ledger"),
    path("ledger/entries/<int:pk>/", pages.ledger_entry, name="ledger_entry"),
]
