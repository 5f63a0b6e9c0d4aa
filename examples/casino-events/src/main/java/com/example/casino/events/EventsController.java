package com.example.casino.events;

import java.util.List;
import java.util.Map;
import org.springframework.http.HttpStatus;
import org.springframework.http.ResponseEntity;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RequestParam;
import org.springframework.web.bind.annotation.RestController;

/** POST /events?topic=T&count=N[&poison=true]: publish N events through EventService. */
@RestController
public class EventsController {
    private final EventService eventService;

    public EventsController(EventService eventService) {
        this.eventService = eventService;
    }

    @PostMapping("/events")
    public ResponseEntity<Map<String, Object>> publish(
            @RequestParam String topic,
            @RequestParam(defaultValue = "1") int count,
            @RequestParam(defaultValue = "false") boolean poison) {
        if (count < 1 || count > 100_000 || topic.isBlank()) {
            return ResponseEntity.badRequest().body(Map.of("error", "topic must be set and count in 1..100000"));
        }
        List<String> ids = eventService.publish(topic, count, poison);
        return ResponseEntity.status(HttpStatus.ACCEPTED).body(Map.of("accepted", ids.size(), "eventIds", ids));
    }
}
