from analyze_experiment.agent.app.cli import main

main()
