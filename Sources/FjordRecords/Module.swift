public enum FjordRecordsModule {}
