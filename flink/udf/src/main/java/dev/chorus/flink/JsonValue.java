package dev.chorus.flink;

import org.apache.flink.table.functions.ScalarFunction;

/**
 * {@code CHORUS_JSON_VALUE(payload, 'name')}: {@code JSON_VALUE(payload, '$.name')} for a
 * top-level field, from one parse per record ({@link JsonFields}).
 */
public final class JsonValue extends ScalarFunction {
    public String eval(String payload, String name) {
        return payload == null ? null : JsonFields.of(payload).text(name);
    }
}
