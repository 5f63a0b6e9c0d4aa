package com.example.casino.events;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import io.github.resilience4j.circuitbreaker.CircuitBreakerRegistry;
import io.micrometer.core.instrument.MeterRegistry;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.boot.autoconfigure.condition.ConditionalOnProperty;
import org.springframework.data.domain.PageRequest;
import org.springframework.kafka.support.KafkaHeaders;
import org.springframework.scheduling.annotation.Scheduled;
import org.springframework.stereotype.Service;
import org.springframework.transaction.support.TransactionTemplate;

/**
 * Re-publishes due PENDING events every casino.retry.interval: RESOLVED on success, the next
 * attempt scheduled (1, 5, 15, then 60 minutes) on failure, {@code <topic>.dlq} after
 * casino.retry.max-retries attempts, DLQ_FAILED when that send fails too.
 */
@Service
@ConditionalOnProperty(name = "casino.retry.enabled", havingValue = "true", matchIfMissing = true)
public class FailedEventRetryService {
    private static final Logger log = LoggerFactory.getLogger(FailedEventRetryService.class);
    private static final int MAX_BATCHES_PER_RUN = 1000;

    private final FailedKafkaEventRepository repository;
    private final ResilientAsyncEventPublisher publisher;
    private final RetryProperties retry;
    private final TransactionTemplate transaction;
    private final ObjectMapper objectMapper;
    private final MeterRegistry meters;
    private final CircuitBreaker circuitBreaker;

    public FailedEventRetryService(
            FailedKafkaEventRepository repository,
            ResilientAsyncEventPublisher publisher,
            RetryProperties retry,
            TransactionTemplate transaction,
            ObjectMapper objectMapper,
            MeterRegistry meters,
            CircuitBreakerRegistry breakers) {
        this.repository = repository;
        this.publisher = publisher;
        this.retry = retry;
        this.transaction = transaction;
        this.objectMapper = objectMapper;
        this.meters = meters;
        this.circuitBreaker = breakers.circuitBreaker("kafka");
    }

    @Scheduled(fixedDelayString = "${casino.retry.interval:60s}", initialDelayString = "${casino.retry.interval:60s}")
    public void retryFailedEvents() {
        if (circuitBreaker.getState() == CircuitBreaker.State.OPEN) {
            log.info("Retry pass skipped: the kafka circuit breaker is OPEN");
            return;
        }
        for (int batch = 0; batch < MAX_BATCHES_PER_RUN; batch++) {
            Integer done = "none".equals(retry.claim()) ? unlockedBatch() : lockedBatch();
            if (done == null || done == 0) {
                return;
            }
        }
    }

    /** SELECT ... FOR UPDATE SKIP LOCKED: rows held by another pass are left to it. */
    private Integer lockedBatch() {
        return transaction.execute(tx -> {
            List<FailedKafkaEvent> due = repository.claimDue(Instant.now(), PageRequest.of(0, retry.batchSize()));
            due.forEach(this::attempt);
            return due.size();
        });
    }

    /** The runbook's job as written: read, publish, save, with no lock held. */
    private Integer unlockedBatch() {
        List<FailedKafkaEvent> due = repository.findDue(Instant.now(), PageRequest.of(0, retry.batchSize()));
        for (FailedKafkaEvent event : due) {
            attempt(event);
            repository.save(event);
        }
        return due.size();
    }

    private void attempt(FailedKafkaEvent event) {
        String topic = event.getTopic();
        int attempt = event.getRetryCount() + 1;
        meters.counter("kafka.retry.attempts", "topic", topic).increment();
        try {
            publisher.sendNow(topic, event.getEventKey(), event.getPayload(), headersOf(event), retry.sendTimeout());
            event.resolved(Instant.now());
            meters.counter("kafka.retry.success", "topic", topic).increment();
            return;
        } catch (Exception e) {
            Throwable cause = ResilientAsyncEventPublisher.rootCause(e);
            String error = String.valueOf(cause.getMessage());
            String type = cause.getClass().getName();
            Instant now = Instant.now();
            if (attempt < retry.maxRetries()) {
                event.failedAgain(error, type, now, now.plus(retry.delayBefore(attempt + 1)));
                return;
            }
            event.failedAgain(error, type, now, null);
            sendToDlq(event, error, type);
        }
    }

    private void sendToDlq(FailedKafkaEvent event, String error, String type) {
        String dlq = KafkaTopics.dlqTopicFor(event.getTopic());
        Map<String, String> headers = headersOf(event);
        headers.put(KafkaHeaders.DLT_ORIGINAL_TOPIC, event.getTopic());
        headers.put(KafkaHeaders.DLT_EXCEPTION_FQCN, type);
        headers.put(KafkaHeaders.DLT_EXCEPTION_MESSAGE, error);
        try {
            publisher.sendNow(dlq, event.getEventKey(), event.getPayload(), headers, retry.sendTimeout());
            event.deadLettered("DLQ", null, Instant.now());
            meters.counter("kafka.dlq.sent", "topic", event.getTopic()).increment();
        } catch (Exception e) {
            Throwable cause = ResilientAsyncEventPublisher.rootCause(e);
            log.error("DLQ send failed for event {}: manual intervention required", event.getEventId(), cause);
            event.deadLettered("DLQ_FAILED", error + "; DLQ send to " + dlq + " failed: " + cause.getMessage(),
                    Instant.now());
        }
    }

    private Map<String, String> headersOf(FailedKafkaEvent event) {
        if (event.getHeaders() == null || event.getHeaders().isBlank()) {
            return new LinkedHashMap<>();
        }
        try {
            return objectMapper.readValue(event.getHeaders(), new TypeReference<LinkedHashMap<String, String>>() {});
        } catch (Exception e) {
            return new LinkedHashMap<>();
        }
    }
}
