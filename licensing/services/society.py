from __future__ import annotations

from django.db import transaction

from accounts.scoping import Caller
from accounts.services import audit_record
from licensing.errors import LicensingError
from licensing.models import ConsentRegime, SocietySettings


def society_settings_get() -> SocietySettings:
    settings, _ = SocietySettings.objects.get_or_create(pk=1)
    return settings


def society_settings_update(*, caller: Caller, consent_regime: str) -> SocietySettings:
    if not caller.is_staff:
        raise LicensingError("Only society staff may change the consent regime.", code="forbidden")
    if consent_regime not in ConsentRegime.values:
        raise LicensingError(f"Unknown consent regime {consent_regime!r}.", code="invalid")
    with transaction.atomic():
        settings = SocietySettings.objects.select_for_update().get(pk=society_settings_get().pk)
        previous = settings.consent_regime
        settings.consent_regime = consent_regime
        settings.save(update_fields=["consent_regime", "updated_at"])
        audit_record(
            action="society.consent_regime",
            caller=caller,
            obj=settings,
            details={"from": previous, "to": consent_regime},
        )
    return settings
