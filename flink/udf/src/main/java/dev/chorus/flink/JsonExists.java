package dev.chorus.flink;

import org.apache.flink.table.functions.ScalarFunction;

/**
 * {@code CHORUS_JSON_EXISTS(payload, 'name')}: {@code JSON_EXISTS(payload, '$.name')} for a
 * top-level field, from one parse per record ({@link JsonFields}).
 */
public final class JsonExists extends ScalarFunction {
    public Boolean eval(String payload, String name) {
        return payload == null ? null : JsonFields.of(payload).exists(name);
    }
}
