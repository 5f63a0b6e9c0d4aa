package com.example.casino.events;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.github.resilience4j.circuitbreaker.CallNotPermittedException;
import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import io.github.resilience4j.circuitbreaker.CircuitBreakerRegistry;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.annotation.Qualifier;
import org.springframework.kafka.core.KafkaTemplate;
import org.springframework.scheduling.concurrent.ThreadPoolTaskExecutor;
import org.springframework.stereotype.Component;

/**
 * Publishes on the kafkaPublisherExecutor through the "kafka" circuit breaker; an event it
 * cannot publish is stored as PENDING in failed_kafka_events. Never blocks or throws.
 */
@Component
public class ResilientAsyncEventPublisher {
    private static final Logger log = LoggerFactory.getLogger(ResilientAsyncEventPublisher.class);

    private final KafkaTemplate<String, String> kafkaTemplate;
    private final ThreadPoolTaskExecutor executor;
    private final CircuitBreaker circuitBreaker;
    private final FailedKafkaEventRepository repository;
    private final RetryProperties retry;
    private final ObjectMapper objectMapper;
    private final MeterRegistry meters;
    private final Clock clock = Clock.systemUTC();

    public ResilientAsyncEventPublisher(
            KafkaTemplate<String, String> kafkaTemplate,
            @Qualifier("kafkaPublisherExecutor") ThreadPoolTaskExecutor executor,
            CircuitBreakerRegistry breakers,
            FailedKafkaEventRepository repository,
            RetryProperties retry,
            ObjectMapper objectMapper,
            MeterRegistry meters) {
        this.kafkaTemplate = kafkaTemplate;
        this.executor = executor;
        this.circuitBreaker = breakers.circuitBreaker("kafka");
        this.repository = repository;
        this.retry = retry;
        this.objectMapper = objectMapper;
        this.meters = meters;
    }

    public void publish(String topic, String key, CasinoEvent event) {
        String payload;
        try {
            payload = objectMapper.writeValueAsString(event);
        } catch (JsonProcessingException e) {
            log.error("Cannot serialise event {}", event.eventId(), e);
            return;
        }
        Map<String, String> headers = new LinkedHashMap<>();
        headers.put("eventId", event.eventId());
        headers.put("eventType", topic);
        headers.put("source", "casino-events");
        executor.execute(() -> send(topic, key, event.eventId(), payload, headers));
    }

    private void send(String topic, String key, String eventId, String payload, Map<String, String> headers) {
        Timer.Sample sample = Timer.start(meters);
        try {
            circuitBreaker.executeCheckedSupplier(() -> sendNow(topic, key, payload, headers, retry.sendTimeout()));
            sample.stop(latency(topic));
            published(topic, "success").increment();
        } catch (CallNotPermittedException e) {
            meters.counter("kafka.circuit_breaker.open", "topic", topic).increment();
            published(topic, "error").increment();
            store(topic, key, eventId, payload, headers, e);
        } catch (Throwable e) {
            Throwable cause = rootCause(e);
            meters.counter("kafka.events.errors", "topic", topic, "error_type", cause.getClass().getSimpleName())
                    .increment();
            published(topic, "error").increment();
            store(topic, key, eventId, payload, headers, cause);
        }
    }

    /** One synchronous send: the record's value, key and headers exactly as stored. */
    Object sendNow(String topic, String key, String payload, Map<String, String> headers, Duration timeout)
            throws Exception {
        ProducerRecord<String, String> record = new ProducerRecord<>(topic, key, payload);
        headers.forEach((name, value) -> record.headers().add(name, value.getBytes(StandardCharsets.UTF_8)));
        try {
            return kafkaTemplate.send(record).get(timeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            throw e.getCause() instanceof Exception cause ? cause : e;
        }
    }

    private void store(
            String topic, String key, String eventId, String payload, Map<String, String> headers, Throwable error) {
        try {
            Instant now = clock.instant();
            repository.save(new FailedKafkaEvent(
                    eventId, topic, key, payload, objectMapper.writeValueAsString(headers),
                    String.valueOf(error.getMessage()), error.getClass().getName(),
                    now, now.plus(retry.delayBefore(1))));
            meters.counter("kafka.events.stored_for_retry", "topic", topic).increment();
        } catch (Exception e) {
            log.error("Event {} for {} is lost: it could not be stored for retry", eventId, topic, e);
        }
    }

    private Counter published(String topic, String status) {
        return meters.counter("kafka.events.published", "topic", topic, "status", status);
    }

    private Timer latency(String topic) {
        return Timer.builder("kafka.publish.latency")
                .tag("topic", topic)
                .publishPercentileHistogram()
                .register(meters);
    }

    static Throwable rootCause(Throwable error) {
        Throwable cause = error;
        while (cause.getCause() != null && cause.getCause() != cause) {
            cause = cause.getCause();
        }
        return cause;
    }

    public Map<String, Object> getPublisherStats() {
        ThreadPoolExecutor pool = executor.getThreadPoolExecutor();
        Map<String, Object> threadPool = new LinkedHashMap<>();
        threadPool.put("activeCount", pool.getActiveCount());
        threadPool.put("poolSize", pool.getPoolSize());
        threadPool.put("maxPoolSize", pool.getMaximumPoolSize());
        threadPool.put("queueSize", pool.getQueue().size());
        threadPool.put("queueCapacity", executor.getQueueCapacity());
        Map<String, Object> stats = new LinkedHashMap<>();
        stats.put("circuitBreakerState", circuitBreaker.getState().name());
        stats.put("threadPool", threadPool);
        return stats;
    }
}
