"""Youthlink: volunteer and social-organization coordination for a city youth league."""
