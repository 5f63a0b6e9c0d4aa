package com.example.casino.events;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.springframework.kafka.annotation.KafkaListener;
import org.springframework.stereotype.Component;

/** Consumes player registrations; a payload with "poison": true fails (and goes to the DLQ). */
@Component
public class PlayerRegisteredListener {
    private final ObjectMapper objectMapper;
    private final AtomicLong processed = new AtomicLong();

    public PlayerRegisteredListener(ObjectMapper objectMapper) {
        this.objectMapper = objectMapper;
    }

    @KafkaListener(id = "player-registered", topics = KafkaTopics.PLAYER_REGISTERED, groupId = "casino-events")
    public void onPlayerRegistered(ConsumerRecord<String, String> record) throws Exception {
        JsonNode event = objectMapper.readTree(record.value());
        if (event.path("payload").path("poison").asBoolean(false)) {
            throw new PoisonEventException("Cannot process event " + event.path("eventId").asText()
                    + " for " + event.path("userId").asText() + ": payload is poison");
        }
        processed.incrementAndGet();
    }

    public long processed() {
        return processed.get();
    }

    public static class PoisonEventException extends IllegalStateException {
        public PoisonEventException(String message) {
            super(message);
        }
    }
}
