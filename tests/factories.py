import factory

from accounts.models import Organisation, OrganisationKind, User
from accounts.services import organisation_create


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"person{n}@example.test")
    full_name = factory.Faker("name")
    password = factory.PostGenerationMethodCall("set_password", "correct-horse-battery")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class OrganisationFactory(factory.Factory):
    """Organisations are made through the service, so they get real registry codes."""

    class Meta:
        model = Organisation

    name = factory.Sequence(lambda n: f"Organisation {n}")
    kind = OrganisationKind.RIGHTS_HOLDER
    country = "GB"

    @classmethod
    def _create(cls, model_class, **kwargs):
        return organisation_create(creator=None, **kwargs)

    @classmethod
    def _build(cls, model_class, **kwargs):
        return model_class(**kwargs)
