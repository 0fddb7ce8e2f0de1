//! One thin module per subcommand, composing spec, source, plan, engine.
