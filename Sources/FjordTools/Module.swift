public enum FjordToolsModule {}
