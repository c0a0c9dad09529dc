"""The reference schema: what a feature should look like, and how sure we must be before we say
it does not.

Thresholds layer default -> per type -> per feature, so a person can loosen one noisy feature
without touching the others.

>>> s = Schema.model_validate({"features": {"price": {"type": "float", "range": {"min": 0}}}})
>>> s.thresholds_for("price").jensen_shannon
0.01
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

FeatureType = Literal["int", "float", "categorical", "bool"]
NUMERIC_TYPES = ("int", "float")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Thresholds(_Frozen):
    """Effect-size floors and error budgets. A statistic must pass both its floor and what it
    looks like under no change at this window size before it is an anomaly."""

    jensen_shannon: float = Field(0.01, gt=0, le=1, description="bits, numeric features")
    l_infinity: float = Field(0.05, gt=0, le=1, description="largest category frequency change")
    missing_rate_increase: float = Field(0.05, gt=0, le=1)
    violation_rate: float = Field(0.01, ge=0, le=1)
    out_of_support: float = Field(
        0.01, gt=0, le=1, description="share of values outside the training range"
    )
    false_alarm_rate: float = Field(1e-6, gt=0, lt=0.5, description="per test, per window")
    # Feature skew (serving against the training pipeline, per request): two numbers agree
    # within max(skew_absolute, skew_relative x the larger magnitude), as math.isclose; a
    # window flags when more than skew_rate of joined requests disagree, past chance.
    skew_absolute: float = Field(1e-9, ge=0, description="feature skew: absolute tolerance")
    skew_relative: float = Field(1e-6, ge=0, lt=1, description="feature skew: relative tolerance")
    skew_rate: float = Field(0.001, ge=0, lt=1, description="tolerated share that disagrees")


class ThresholdOverrides(_Frozen):
    jensen_shannon: float | None = Field(None, gt=0, le=1)
    l_infinity: float | None = Field(None, gt=0, le=1)
    missing_rate_increase: float | None = Field(None, gt=0, le=1)
    violation_rate: float | None = Field(None, ge=0, le=1)
    out_of_support: float | None = Field(None, gt=0, le=1)
    false_alarm_rate: float | None = Field(None, gt=0, lt=0.5)
    skew_absolute: float | None = Field(None, ge=0)
    skew_relative: float | None = Field(None, ge=0, lt=1)
    skew_rate: float | None = Field(None, ge=0, lt=1)

    def apply(self, base: Thresholds) -> Thresholds:
        return base.model_copy(update=self.model_dump(exclude_none=True))


class ThresholdLadder(_Frozen):
    default: Thresholds = Thresholds()
    by_type: dict[FeatureType, ThresholdOverrides] = Field(default_factory=dict)


class Range(_Frozen):
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"range.min ({self.min}) is above range.max ({self.max})")
        return self


class FeatureSpec(_Frozen):
    type: FeatureType
    required: bool = Field(False, description="absent -> SCHEMA_MISSING_COLUMN")
    range: Range | None = None
    domain: list[str] | None = Field(None, description="closed set of categories, or open")
    allow_nan: bool = False
    allow_inf: bool = False
    missing_values: list[float | str] = Field(
        default_factory=list, description="sentinels that mean 'missing', e.g. 0 or -1"
    )
    sensitive: bool = False
    raters_may_see: bool = Field(
        False, description="a sensitive feature's raw value may be shown to human raters"
    )
    thresholds: ThresholdOverrides = ThresholdOverrides()

    @model_validator(mode="after")
    def _fits_type(self) -> FeatureSpec:
        if self.type in NUMERIC_TYPES and self.domain is not None:
            raise ValueError(f"domain is for categorical features, not {self.type}")
        if self.type not in NUMERIC_TYPES and self.range is not None:
            raise ValueError(f"range is for int and float features, not {self.type}")
        return self

    @property
    def numeric(self) -> bool:
        return self.type in NUMERIC_TYPES


class Schema(_Frozen):
    version: Literal[1] = 1
    model: str | None = Field(None, description="model name this baseline watches")
    features: dict[str, FeatureSpec]
    prediction: FeatureSpec | None = None
    allow_new_features: bool = False
    thresholds: ThresholdLadder = ThresholdLadder()

    def spec(self, name: str) -> FeatureSpec:
        if name == PREDICTION and self.prediction is not None:
            return self.prediction
        return self.features[name]

    def monitored(self) -> list[str]:
        """Every monitored name: the features, then the prediction if it is logged."""
        return [*self.features, *([PREDICTION] if self.prediction is not None else [])]

    def thresholds_for(self, name: str) -> Thresholds:
        spec = self.spec(name)
        by_type = self.thresholds.by_type.get(spec.type, ThresholdOverrides())
        return spec.thresholds.apply(by_type.apply(self.thresholds.default))


PREDICTION = "prediction"


def schema_errors(data: object) -> list[str]:
    """Every problem in a schema document, each naming the key at fault."""
    try:
        Schema.model_validate(data)
    except ValidationError as exc:
        return [
            f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors()
        ]
    return []
