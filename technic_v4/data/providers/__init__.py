"""Market-data providers: clients that fetch bars and the updater that appends them to the
store. Each provider is optional; the scanner itself never touches the network."""
