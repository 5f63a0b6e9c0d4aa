package com.example.casino.events;

import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import io.github.resilience4j.circuitbreaker.CircuitBreakerRegistry;
import java.time.Duration;
import java.time.Instant;
import org.springframework.boot.actuate.health.Health;
import org.springframework.boot.actuate.health.HealthIndicator;
import org.springframework.boot.actuate.health.Status;
import org.springframework.stereotype.Component;

/** /actuator/health/kafka: the breaker and the failed-events table, as the runbook shows them. */
@Component("kafkaHealthIndicator")
public class KafkaHealthIndicator implements HealthIndicator {
    static final Status DEGRADED = new Status("DEGRADED");

    private final CircuitBreaker circuitBreaker;
    private final FailedKafkaEventRepository repository;

    public KafkaHealthIndicator(CircuitBreakerRegistry breakers, FailedKafkaEventRepository repository) {
        this.circuitBreaker = breakers.circuitBreaker("kafka");
        this.repository = repository;
    }

    @Override
    public Health health() {
        CircuitBreaker.State state = circuitBreaker.getState();
        long pending = repository.countByStatus("PENDING");
        long dlqFailed = repository.countByStatus("DLQ_FAILED");
        boolean healthy = state == CircuitBreaker.State.CLOSED && dlqFailed == 0;
        Health.Builder health = healthy ? Health.up() : Health.status(DEGRADED);
        health.withDetail("circuitBreakerState", state.name())
                .withDetail("pendingEvents", pending)
                .withDetail("dlqFailedEvents", dlqFailed);
        Instant oldest = pending > 0 ? repository.oldestPendingCreatedAt() : null;
        if (oldest != null) {
            health.withDetail("oldestPendingAge", humanAge(Duration.between(oldest, Instant.now())));
        }
        return health.build();
    }

    /** "2 hours", "1 minute", "42 seconds": the largest whole unit. */
    static String humanAge(Duration age) {
        long seconds = Math.max(0, age.getSeconds());
        long[] sizes = {86_400, 3_600, 60, 1};
        String[] units = {"day", "hour", "minute", "second"};
        for (int i = 0; i < sizes.length; i++) {
            long n = seconds / sizes[i];
            if (n >= 1 || i == sizes.length - 1) {
                return n + " " + units[i] + (n == 1 ? "" : "s");
            }
        }
        throw new AssertionError();
    }
}
