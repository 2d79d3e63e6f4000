"""Batch scoring, reasons, segments, reports and CRM push."""
