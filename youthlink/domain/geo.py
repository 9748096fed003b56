"""Distances on the earth's surface: haversine in SQL (with a bounding box an index can use) and in Python.

The embedded PostgreSQL ships no earthdistance / PostGIS, so a distance filter is a bounding box on the
indexed (lat, lng) columns followed by an exact haversine test.
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import ColumnElement, and_, func
from sqlalchemy.orm import QueryableAttribute

EARTH_RADIUS_KM = 6371.0088
Column = ColumnElement[Any] | QueryableAttribute[Any]


def haversine_km(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def sql_haversine_km(lat: Column, lng: Column, at_lat: float, at_lng: float) -> ColumnElement[float]:
    dp = func.radians(lat - at_lat) / 2
    dl = func.radians(lng - at_lng) / 2
    a = func.power(func.sin(dp), 2) + func.cos(func.radians(at_lat)) * func.cos(func.radians(lat)) * func.power(
        func.sin(dl), 2
    )
    return 2 * EARTH_RADIUS_KM * func.asin(func.least(1.0, func.sqrt(a)))


def sql_within_km(lat: Column, lng: Column, at_lat: float, at_lng: float,
                  radius_km: float) -> ColumnElement[bool]:
    dlat = math.degrees(radius_km / EARTH_RADIUS_KM)
    dlng = dlat / max(math.cos(math.radians(at_lat)), 1e-6)
    return and_(
        lat.between(at_lat - dlat, at_lat + dlat),
        lng.between(at_lng - dlng, at_lng + dlng),
        sql_haversine_km(lat, lng, at_lat, at_lng) <= radius_km,
    )
