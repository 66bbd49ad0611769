"""Forms behind the pages: strategy settings, list filters, alert rules."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from execution.models import BacktestStatus, OrderStatus
from strategies.base import ParameterError
from strategies.models import Severity, Strategy
from strategies.registry import UnknownStrategy, get_strategy
from trading.models import AlertEventType, AlertRule


def _strategy_class(key: str):
    try:
        return get_strategy(key)
    except UnknownStrategy:
        return None


class StrategyForm(forms.ModelForm):
    """A strategy's settings, with one typed field per parameter of its strategy class.

    The parameter fields come from the class's schema (type, bounds, help); the whole set
    is then checked by the class itself, so cross-field rules (fast < slow) and bounds
    give the same messages as the API and the admin.
    """

    PARAM_PREFIX = "param_"

    class Meta:
        model = Strategy
        fields = [
            "name",
            "description",
            "timeframe",
            "stocks",
            "allow_short",
            "sizing_method",
            "position_fraction",
            "risk_per_trade",
            "stop_loss_type",
            "stop_loss_value",
            "take_profit_type",
            "take_profit_value",
            "max_open_positions",
            "fractional_shares",
        ]
        widgets = {
            "description": forms.Textarea(attrs={"rows": 2}),
            "stocks": forms.SelectMultiple(attrs={"size": 6}),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.strategy_cls = _strategy_class(self.instance.strategy_class)
        self.param_names: list[str] = []
        if self.strategy_cls is None:
            # An unknown class (module removed?): edit the raw JSON instead.
            self.fields["parameters_json"] = forms.JSONField(
                label="Parameters (JSON)", initial=self.instance.parameters, required=False
            )
            return
        current = self.instance.parameters or {}
        for name, param in self.strategy_cls.parameters.items():
            field = self._field_for(param)
            field.initial = current.get(name, param.default)
            field.label = name.replace("_", " ").capitalize()
            field.help_text = param.help
            self.fields[self.PARAM_PREFIX + name] = field
            self.param_names.append(name)

    @staticmethod
    def _field_for(param) -> forms.Field:
        bounds = {"min_value": param.min, "max_value": param.max}
        if param.choices:
            return forms.TypedChoiceField(
                choices=[(c, c) for c in param.choices], coerce=param.type, required=True
            )
        if param.type is bool:
            return forms.BooleanField(required=False)
        if param.type is int:
            return forms.IntegerField(**bounds)
        if param.type is float:
            return forms.FloatField(**bounds)
        return forms.CharField()

    def parameter_fields(self) -> list[forms.BoundField]:
        return [self[self.PARAM_PREFIX + n] for n in self.param_names]

    def other_fields(self) -> list[forms.BoundField]:
        return [self[n] for n in self.fields if not n.startswith(self.PARAM_PREFIX)]

    def _update_errors(self, errors: ValidationError) -> None:
        """Model-level errors about fields this form does not show (the class, the raw
        parameters, risk_settings) become form-wide errors instead of a crash."""
        if hasattr(errors, "error_dict"):
            mapped: dict[str, list] = {}
            for name, messages in errors.error_dict.items():
                if name == "parameters" and "parameters_json" in self.fields:
                    target = "parameters_json"
                elif name in self.fields or name == NON_FIELD_ERRORS:
                    target = name
                else:
                    target = NON_FIELD_ERRORS
                    messages = [ValidationError(f"{name}: {m}") for e in messages for m in e.messages]
                mapped.setdefault(target, []).extend(messages)
            errors = ValidationError(mapped)
        super()._update_errors(errors)

    def service_values(self) -> dict[str, Any]:
        """The cleaned values as strategies.services.update_strategy takes them."""
        values = {
            n: self.cleaned_data[n] for n in self.Meta.fields if n != "stocks" and n in self.cleaned_data
        }
        values["parameters"] = self.instance.parameters
        return values

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.strategy_cls is None:
            params = cleaned.get("parameters_json") or {}
            if not isinstance(params, dict):
                self.add_error("parameters_json", "Expected a JSON object.")
            else:
                self.instance.parameters = params
            return cleaned
        params = {
            n: cleaned[self.PARAM_PREFIX + n] for n in self.param_names if self.PARAM_PREFIX + n in cleaned
        }
        if len(params) != len(self.param_names):
            return cleaned  # field-level errors already reported
        try:
            self.instance.parameters = self.strategy_cls.validate_parameters(params)
        except ParameterError as exc:
            for name, message in exc.errors.items():
                field = self.PARAM_PREFIX + name
                self.add_error(field if field in self.fields else None, message)
        return cleaned


class TradeFilterForm(forms.Form):
    OUTCOMES = [("", "Any outcome"), ("win", "Winners"), ("loss", "Losers"), ("open", "Open")]

    strategy = forms.ModelChoiceField(Strategy.objects.all(), required=False, empty_label="All strategies")
    symbol = forms.CharField(required=False, max_length=32)
    start = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="From")
    end = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="To")
    outcome = forms.ChoiceField(choices=OUTCOMES, required=False)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end and start > end:
            raise ValidationError({"end": "must be on or after the start date"})
        return cleaned


class OrderFilterForm(forms.Form):
    STATUSES = [("", "Any status"), ("open", "Open (working)"), *OrderStatus.choices]

    status = forms.ChoiceField(choices=STATUSES, required=False)
    strategy = forms.ModelChoiceField(Strategy.objects.all(), required=False, empty_label="All strategies")
    symbol = forms.CharField(required=False, max_length=32)


class EventFilterForm(forms.Form):
    severity = forms.ChoiceField(choices=[("", "Any severity"), *Severity.choices], required=False)
    event_type = forms.ChoiceField(required=False, label="Type")
    strategy = forms.ModelChoiceField(Strategy.objects.all(), required=False, empty_label="All strategies")

    def __init__(self, *args: Any, event_types: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["event_type"].choices = [("", "Any type"), *((t, t) for t in sorted(event_types or []))]


class BacktestFilterForm(forms.Form):
    strategy = forms.ModelChoiceField(Strategy.objects.all(), required=False, empty_label="All strategies")
    status = forms.ChoiceField(choices=[("", "Any status"), *BacktestStatus.choices], required=False)


class AlertRuleForm(forms.ModelForm):
    event_types = forms.MultipleChoiceField(
        choices=AlertEventType.choices, widget=forms.CheckboxSelectMultiple, required=True
    )

    class Meta:
        model = AlertRule
        fields = ["name", "channel", "target", "event_types", "enabled"]
