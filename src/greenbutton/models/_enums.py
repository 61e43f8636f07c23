"""ESPI code tables (NAESB ESPI 4.0 ``espi.xsd``) as plain dicts of code -> name.

Utilities send codes outside the spec, so lookups never fail: an unknown code keeps its
integer (the readings table shows it as-is, DESIGN 3.3) and unknown units print as
``uom:<code>``. Names are snake_case ESPI enumeration names; unit symbols are ASCII.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "ACCUMULATION_BEHAVIOUR",
    "COMMODITY",
    "CURRENCY",
    "FLOW_DIRECTION",
    "MEASUREMENT_KIND",
    "QUALITY",
    "SERVICE_KIND",
    "UOM",
    "code_name",
    "currency_code",
    "uom_symbol",
]

#: UnitSymbolKind -> ASCII symbol (the XSD's own symbols, with ³/² spelled 3/2).
UOM: Mapping[int, str] = {
    0: "none", 2: "m", 3: "g", 4: "rev/s", 5: "A", 6: "K", 7: "mol", 8: "cd", 9: "deg",
    10: "rad", 11: "sr", 21: "Gy", 22: "Bq", 23: "degC", 24: "Sv", 25: "F", 27: "s", 28: "H",
    29: "V", 30: "ohm", 31: "J", 32: "N", 33: "Hz", 34: "lx", 35: "lm", 36: "Wb", 37: "T",
    38: "W", 39: "Pa", 41: "m2", 42: "m3", 43: "m/s", 44: "m/s2", 45: "m3/s", 46: "m/m3",
    47: "kg.m", 48: "g/m3", 49: "m2/s", 50: "W/(m.K)", 51: "J/K", 53: "S", 54: "rad/s",
    61: "VA", 63: "VAr", 65: "cos_phi", 66: "Vs", 67: "V2", 68: "As", 69: "A2", 70: "A2s",
    71: "VAh", 72: "Wh", 73: "VArh", 74: "V/Hz", 75: "Hz/s", 76: "char", 77: "char/s",
    78: "g.m2", 79: "B", 80: "money", 81: "W/s", 82: "L/s", 100: "Q", 101: "Qh", 102: "ohm.m",
    103: "A/m", 104: "V2h", 105: "A2h", 106: "Ah", 107: "Wh/m3", 108: "timestamp",
    109: "status", 111: "count", 113: "Bm", 114: "code", 115: "Wh/rev", 116: "VArh/rev",
    117: "VAh/rev", 118: "me_code", 119: "ft3", 120: "ft3_compensated",
    123: "ft3_compensated/h", 125: "m3/h", 126: "m3_compensated/h", 127: "m3_uncompensated/h",
    128: "gal", 129: "gal/h", 130: "imp_gal", 131: "imp_gal/h", 132: "BTU", 133: "BTU/h",
    134: "L", 137: "L/h", 138: "L_compensated/h", 139: "L_uncompensated/h", 140: "PaG",
    141: "psiA", 142: "psiG", 143: "L/L", 144: "g/g", 145: "mol/m3", 146: "mol/mol",
    147: "mol/kg", 148: "m/m", 149: "s/s", 150: "Hz/Hz", 151: "V/V", 152: "A/A", 153: "W/VA",
    154: "rev", 155: "PaA", 156: "L_uncompensated", 157: "L_compensated", 158: "kat",
    159: "min", 160: "h", 161: "Q45", 162: "Q60", 163: "Q45h", 164: "Q60h", 165: "J/kg",
    166: "m3_uncompensated", 167: "m3_compensated", 168: "W/W", 169: "therm",
}  # fmt: skip

#: FlowDirectionKind.
FLOW_DIRECTION: Mapping[int, str] = {
    0: "none", 1: "forward", 2: "lagging", 3: "leading", 4: "net", 5: "q1_plus_q2",
    7: "q1_plus_q3", 8: "q1_plus_q4", 9: "q1_minus_q4", 10: "q2_plus_q3", 11: "q2_plus_q4",
    12: "q2_minus_q3", 13: "q3_plus_q4", 14: "q3_minus_q2", 15: "quadrant1", 16: "quadrant2",
    17: "quadrant3", 18: "quadrant4", 19: "reverse", 20: "total", 21: "total_by_phase",
}  # fmt: skip

#: CommodityKind.
COMMODITY: Mapping[int, str] = {
    0: "none", 1: "electricity_secondary_metered", 2: "electricity_primary_metered",
    3: "communication", 4: "air", 5: "insulative_gas", 6: "insulative_oil", 7: "natural_gas",
    8: "propane", 9: "potable_water", 10: "steam", 11: "waste_water", 12: "heating_fluid",
    13: "cooling_fluid", 14: "non_potable_water", 15: "nox", 16: "so2", 17: "ch4", 18: "co2",
    19: "carbon", 20: "hch", 21: "pfc", 22: "sf6", 23: "tv_license", 24: "internet",
    25: "refuse", 26: "electricity_transmission_metered",
}  # fmt: skip

#: MeasurementKind (ReadingType.kind): the codes seen in Green Button data.
MEASUREMENT_KIND: Mapping[int, str] = {
    0: "none", 2: "apparent_power_factor", 3: "currency", 4: "current", 5: "current_angle",
    6: "current_imbalance", 7: "date", 8: "demand", 9: "distance",
    10: "distortion_volt_amperes", 11: "energization", 12: "energy",
    13: "energization_load_side", 14: "fan", 15: "frequency", 16: "funds",
    31: "line_losses", 32: "losses", 33: "negative_sequence", 34: "phasor_power_factor",
    35: "phasor_reactive_power", 36: "positive_sequence", 37: "power", 38: "power_factor",
    40: "quantity_power", 41: "sag", 42: "swell", 43: "switch_position", 44: "tap_position",
    45: "tariff_rate", 46: "temperature", 47: "total_harmonic_distortion",
    48: "transformer_losses", 54: "voltage", 55: "voltage_angle", 56: "voltage_excursion",
    57: "voltage_imbalance", 58: "volume", 59: "zero_flow_duration", 60: "zero_sequence",
    64: "distortion_power_factor", 81: "frequency_excursion", 90: "application_context",
    155: "volumetric_flow",
}  # fmt: skip

#: ServiceKind (UsagePoint ServiceCategory/kind); 10 is the ESPI 3.3 GBA "weather" extension.
SERVICE_KIND: Mapping[int, str] = {
    0: "electricity", 1: "gas", 2: "water", 3: "time", 4: "heat", 5: "refuse", 6: "sewerage",
    7: "rates", 8: "tv_license", 9: "internet", 10: "weather",
}  # fmt: skip

#: QualityOfReading.
QUALITY: Mapping[int, str] = {
    0: "valid", 7: "manually_edited", 8: "estimated_using_reference_day",
    9: "estimated_using_linear_interpolation", 10: "questionable", 11: "derived",
    12: "projected", 13: "mixed", 14: "raw", 15: "normalized_for_weather", 16: "other",
    17: "validated", 18: "verified", 19: "revenue_quality",
}  # fmt: skip

#: AccumulationKind (ReadingType.accumulationBehaviour).
ACCUMULATION_BEHAVIOUR: Mapping[int, str] = {
    0: "none", 1: "bulk_quantity", 2: "continuous_cumulative", 3: "cumulative",
    4: "delta_data", 6: "indicating", 9: "summation", 10: "time_delay", 12: "instantaneous",
    13: "latching_quantity", 14: "bounded_quantity",
}  # fmt: skip

#: ISO 4217 numeric -> alpha (the ESPI Currency enumeration; 0 = "another currency").
CURRENCY: Mapping[int, str] = {
    840: "USD", 978: "EUR", 36: "AUD", 124: "CAD", 756: "CHF", 156: "CNY", 208: "DKK",
    826: "GBP", 392: "JPY", 578: "NOK", 643: "RUB", 752: "SEK", 356: "INR",
}  # fmt: skip


def code_name(table: Mapping[int, str], code: int | None) -> str | int | None:
    """Name of ``code`` in ``table``; the integer itself when unknown, None when absent."""
    if code is None:
        return None
    return table.get(code, code)


def uom_symbol(code: int | None) -> str | None:
    """Unit symbol of a UnitSymbolKind code (``uom:<code>`` when unknown)."""
    if code is None:
        return None
    return UOM.get(code, f"uom:{code}")


def currency_code(code: int | None) -> str | None:
    """ISO 4217 alpha code of a numeric currency (``iso4217:<code>`` when unknown)."""
    if code is None or code == 0:
        return None
    return CURRENCY.get(code, f"iso4217:{code}")
