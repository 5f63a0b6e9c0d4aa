package com.example.casino.events;

import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.springframework.stereotype.Service;

/** Builds events of the runbook's shape and hands them to the publisher. */
@Service
public class EventService {
    private final ResilientAsyncEventPublisher eventPublisher;

    public EventService(ResilientAsyncEventPublisher eventPublisher) {
        this.eventPublisher = eventPublisher;
    }

    public List<String> publish(String topic, int count, boolean poison) {
        List<String> ids = new ArrayList<>(count);
        for (int n = 0; n < count; n++) {
            String userId = "user-" + (n + 1);
            Map<String, Object> payload = new LinkedHashMap<>();
            payload.put("playerId", userId);
            payload.put("sequence", n + 1);
            if (poison) {
                payload.put("poison", true);
            }
            CasinoEvent event = new CasinoEvent(
                    UUID.randomUUID().toString(),
                    Instant.now().toString(),
                    "casino-7",
                    userId,
                    Map.of("source", "casino-events", "schemaVersion", "1"),
                    payload);
            eventPublisher.publish(topic, userId, event);
            ids.add(event.eventId());
        }
        return ids;
    }
}
