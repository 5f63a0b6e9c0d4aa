package com.example.casino.events;

import java.util.Map;
import org.springframework.boot.actuate.endpoint.annotation.Endpoint;
import org.springframework.boot.actuate.endpoint.annotation.ReadOperation;
import org.springframework.stereotype.Component;

/** /actuator/kafkapublisher: getPublisherStats() (breaker state and the publisher's thread pool). */
@Component
@Endpoint(id = "kafkapublisher")
public class PublisherStatsEndpoint {
    private final ResilientAsyncEventPublisher publisher;

    public PublisherStatsEndpoint(ResilientAsyncEventPublisher publisher) {
        this.publisher = publisher;
    }

    @ReadOperation
    public Map<String, Object> stats() {
        return publisher.getPublisherStats();
    }
}
