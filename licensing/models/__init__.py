"""The licensing app's models: the repertoire, licences with their payments, usage declarations."""

from licensing.models.claims import (  # noqa: F401
    ClaimStatus,
    UnmatchedClaim,
    UnmatchedDismissal,
)
from licensing.models.declarations import (  # noqa: F401
    DeclarationReservedIdentifier,
    DeclarationStatus,
    DeclarationUnmatched,
    DeclarationWorkUsage,
    UsageDeclaration,
    UsageUnit,
)
from licensing.models.licences import (  # noqa: F401
    Certificate,
    DeclarationPeriod,
    Licence,
    LicenceProduct,
    LicenceStatus,
    Payment,
    PaymentMethod,
    PaymentStatus,
    Quote,
    Refund,
    StripeEvent,
    StripeEventStatus,
    TariffTier,
)
from licensing.models.repertoire import (  # noqa: F401
    FULL_SHARE_PPM,
    Catalogue,
    CatalogueImport,
    Conflict,
    ConflictStatus,
    Consent,
    ConsentRegime,
    IdentifierScheme,
    ImportMode,
    JobStatus,
    MediaType,
    Reservation,
    ReservationKind,
    Share,
    ShareRole,
    SocietySettings,
    Use,
    Work,
    WorkIdentifier,
    WorkStatus,
)
from licensing.models.summaries import (  # noqa: F401
    DisclosureDigest,
    DisclosurePreference,
    TrainingSummary,
    TrainingSummaryStatus,
)
from licensing.models.trueups import TrueUp, TrueUpStatus  # noqa: F401
