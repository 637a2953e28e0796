"""Review's bridges: code registered only when another plugin is enabled too."""
