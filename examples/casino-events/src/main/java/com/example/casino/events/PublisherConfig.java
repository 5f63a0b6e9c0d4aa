package com.example.casino.events;

import org.apache.kafka.clients.admin.NewTopic;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.kafka.config.TopicBuilder;
import org.springframework.kafka.core.KafkaOperations;
import org.springframework.kafka.listener.DeadLetterPublishingRecoverer;
import org.springframework.kafka.listener.DefaultErrorHandler;
import org.springframework.scheduling.concurrent.ThreadPoolTaskExecutor;
import org.springframework.util.backoff.FixedBackOff;
import org.apache.kafka.common.TopicPartition;

@Configuration
public class PublisherConfig {
    /** The publisher's own pool: 50 threads, a queue of 10,000 (Micrometer: name=kafkaPublisherExecutor). */
    @Bean
    public ThreadPoolTaskExecutor kafkaPublisherExecutor() {
        ThreadPoolTaskExecutor executor = new ThreadPoolTaskExecutor();
        executor.setCorePoolSize(50);
        executor.setMaxPoolSize(50);
        executor.setQueueCapacity(10_000);
        executor.setThreadNamePrefix("kafka-publisher-");
        executor.setWaitForTasksToCompleteOnShutdown(true);
        executor.setAwaitTerminationSeconds(10);
        return executor;
    }

    /** Failed records go to {@code <topic>.dlq} after two more tries, with Spring's DLT headers. */
    @Bean
    public DefaultErrorHandler kafkaErrorHandler(KafkaOperations<String, String> template) {
        DeadLetterPublishingRecoverer recoverer = new DeadLetterPublishingRecoverer(
                template, (record, error) -> new TopicPartition(KafkaTopics.dlqTopicFor(record.topic()), -1));
        return new DefaultErrorHandler(recoverer, new FixedBackOff(100L, 2L));
    }

    @Bean
    public NewTopic playerRegisteredTopic() {
        return TopicBuilder.name(KafkaTopics.PLAYER_REGISTERED).partitions(1).replicas(1).build();
    }

    @Bean
    public NewTopic playerRegisteredDlqTopic() {
        return TopicBuilder.name(KafkaTopics.dlqTopicFor(KafkaTopics.PLAYER_REGISTERED)).partitions(1).replicas(1).build();
    }
}
