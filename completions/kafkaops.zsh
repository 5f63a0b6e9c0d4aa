#compdef kafkaops

_kafkaops_completion() {
  eval $(env _TYPER_COMPLETE_ARGS="${words[1,$CURRENT]}" _KAFKAOPS_COMPLETE=complete_zsh kafkaops)
}

compdef _kafkaops_completion kafkaops
