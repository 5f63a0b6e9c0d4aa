package com.example.casino.events;

public final class KafkaTopics {
    public static final String PLAYER_REGISTERED = "casino.player.registered.v1";
    public static final String DLQ_SUFFIX = ".dlq";

    private KafkaTopics() {}

    public static String dlqTopicFor(String topic) {
        return topic + DLQ_SUFFIX;
    }
}
