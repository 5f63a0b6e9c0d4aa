package com.example.casino.events;

import jakarta.persistence.Column;
import jakarta.persistence.Entity;
import jakarta.persistence.GeneratedValue;
import jakarta.persistence.GenerationType;
import jakarta.persistence.Id;
import jakarta.persistence.Index;
import jakarta.persistence.Table;
import java.time.Instant;

/** An event the publisher could not put on Kafka, kept for the retry job. */
@Entity
@Table(
        name = "failed_kafka_events",
        indexes = @Index(name = "ix_failed_kafka_events_status_next_retry_at", columnList = "status, next_retry_at"))
public class FailedKafkaEvent {
    @Id
    @GeneratedValue(strategy = GenerationType.IDENTITY)
    private Long id;

    private String eventId;

    @Column(nullable = false)
    private String topic;

    private String eventKey;

    @Column(nullable = false, columnDefinition = "text")
    private String payload;

    @Column(columnDefinition = "text")
    private String headers;

    @Column(nullable = false, length = 20)
    private String status; // PENDING → RESOLVED | DLQ | DLQ_FAILED

    @Column(nullable = false)
    private int retryCount;

    @Column(columnDefinition = "text")
    private String lastError;

    private String errorType;

    @Column(nullable = false)
    private Instant createdAt;

    @Column(nullable = false)
    private Instant updatedAt;

    private Instant nextRetryAt;

    private Instant resolvedAt;

    protected FailedKafkaEvent() {}

    public FailedKafkaEvent(
            String eventId, String topic, String eventKey, String payload, String headers,
            String lastError, String errorType, Instant now, Instant nextRetryAt) {
        this.eventId = eventId;
        this.topic = topic;
        this.eventKey = eventKey;
        this.payload = payload;
        this.headers = headers;
        this.status = "PENDING";
        this.retryCount = 0;
        this.lastError = lastError;
        this.errorType = errorType;
        this.createdAt = now;
        this.updatedAt = now;
        this.nextRetryAt = nextRetryAt;
    }

    public Long getId() { return id; }
    public String getEventId() { return eventId; }
    public String getTopic() { return topic; }
    public String getEventKey() { return eventKey; }
    public String getPayload() { return payload; }
    public String getHeaders() { return headers; }
    public String getStatus() { return status; }
    public int getRetryCount() { return retryCount; }
    public String getLastError() { return lastError; }
    public String getErrorType() { return errorType; }
    public Instant getCreatedAt() { return createdAt; }
    public Instant getNextRetryAt() { return nextRetryAt; }

    public void resolved(Instant now) {
        status = "RESOLVED";
        resolvedAt = now;
        updatedAt = now;
        nextRetryAt = null;
    }

    public void failedAgain(String error, String type, Instant now, Instant next) {
        retryCount++;
        lastError = error;
        errorType = type;
        updatedAt = now;
        nextRetryAt = next;
    }

    public void deadLettered(String newStatus, String error, Instant now) {
        status = newStatus;
        if (error != null) {
            lastError = error;
        }
        updatedAt = now;
        nextRetryAt = null;
    }
}
