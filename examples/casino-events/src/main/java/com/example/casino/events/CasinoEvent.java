package com.example.casino.events;

import java.util.Map;

/** The runbook's event shape (BaseEvent plus its payload). */
public record CasinoEvent(
        String eventId,
        String eventTimestamp,
        String brandId,
        String userId,
        Map<String, Object> metadata,
        Map<String, Object> payload) {}
