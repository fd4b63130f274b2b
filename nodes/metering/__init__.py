"""The metering node's core (用电信息采集): VEE in :mod:`.vee` (pure domain code), the
readings store in :mod:`.store`, line ownership in :mod:`.ownership`, proto conversion
in :mod:`.convert`. Nothing is imported here, so each part loads on its own: the VEE
engine needs neither a database nor generated code."""
