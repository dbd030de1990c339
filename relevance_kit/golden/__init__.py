"""The golden set: one trusted label per (query, listing) pair from human judgments, the
agreement that says how far to trust it, and the review files humans fill in."""

from relevance_kit.golden.aggregate import aggregate_golden, validate_judgments
from relevance_kit.golden.agreement import agreement_report
from relevance_kit.golden.review_files import (
    ReviewImport,
    export_label_studio_tasks,
    export_review_csv,
    import_label_studio_export,
    import_review_csv,
    label_studio_config,
)

__all__ = [
    "ReviewImport",
    "aggregate_golden",
    "agreement_report",
    "export_label_studio_tasks",
    "export_review_csv",
    "import_label_studio_export",
    "import_review_csv",
    "label_studio_config",
    "validate_judgments",
]
