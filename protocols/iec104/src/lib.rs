//! IEC 60870-5-104 connections over TCP (placeholder, issue 9).
