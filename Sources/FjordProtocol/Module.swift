public enum FjordProtocolModule {}
