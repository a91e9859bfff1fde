package dev.chorus.flink;

import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.data.TimestampData;
import org.apache.flink.table.functions.ScalarFunction;

/**
 * {@code CHORUS_JSON_TIMESTAMP(payload, 'name')}: the field as an ISO-8601 UTC event time,
 * {@code TRY_CAST(REPLACE(REPLACE(JSON_VALUE(payload, '$.name'), 'T', ' '), 'Z', '') AS
 * TIMESTAMP(3))}, NULL when absent or unreadable; parsed and converted once per record
 * ({@link JsonFields}), however often the source's watermark and the checks ask.
 */
public final class JsonTimestamp extends ScalarFunction {
    public @DataTypeHint(value = "TIMESTAMP(3)", bridgedTo = TimestampData.class) TimestampData
            eval(String payload, String name) {
        return payload == null ? null : JsonFields.of(payload).timestamp(name);
    }
}
