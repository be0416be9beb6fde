# Helpers that give every target of the project the same include order and warnings.

option(VQD_PCH "Precompile libtorch's headers once and reuse them in every target" ON)

# Puts VQD_DEPS_PREFIX/include (or VQD_SYSTEM_FIRST_INCLUDE, see VqdTorch.cmake) ahead of every other include folder of `target` (see the top
# CMakeLists), sets the warnings, and reuses the precompiled libtorch headers.
function(vqd_target_setup target)
  cmake_parse_arguments(ARG "NO_PCH" "" "" ${ARGN})
  if(VQD_DEPS_PREFIX)
    target_include_directories(${target} SYSTEM BEFORE PRIVATE ${VQD_DEPS_PREFIX}/include)
  elseif(VQD_SYSTEM_FIRST_INCLUDE)
    target_include_directories(${target} SYSTEM BEFORE PRIVATE ${VQD_SYSTEM_FIRST_INCLUDE})
  endif()
  # -pthread everywhere: gRPC adds it (defining _REENTRANT), and the precompiled header must match.
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wno-unused-parameter -pthread)
  target_compile_definitions(${target} PRIVATE $<$<BOOL:${VQD_WITH_CUDA}>:VQD_WITH_CUDA=1>)
  if(VQD_PCH AND NOT ARG_NO_PCH AND NOT target STREQUAL "vqd_pch")
    target_precompile_headers(${target} REUSE_FROM vqd_pch)
  endif()
endfunction()

# The target that owns the precompiled header; it must see the same flags as its users.
function(vqd_make_pch)
  if(NOT VQD_PCH)
    return()
  endif()
  add_library(vqd_pch OBJECT ${PROJECT_SOURCE_DIR}/cmake/pch_stub.cc)
  target_link_libraries(vqd_pch PRIVATE ${TORCH_LIBRARIES} absl::status absl::statusor absl::strings)
  target_include_directories(vqd_pch PRIVATE ${PROJECT_SOURCE_DIR}/src)
  vqd_target_setup(vqd_pch)
  target_precompile_headers(vqd_pch PRIVATE ${PROJECT_SOURCE_DIR}/src/base/torch_pch.h)
endfunction()

# vqd_library(<name> SOURCES ... PUBLIC_DEPS ... PRIVATE_DEPS ...): a static library rooted at src/.
function(vqd_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;PUBLIC_DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(${name} PUBLIC ${ARG_PUBLIC_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  vqd_target_setup(${name})
endfunction()

# vqd_executable(<name> SOURCES ... DEPS ...)
function(vqd_executable name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
  vqd_target_setup(${name})
endfunction()

# vqd_grpc_library(<name> ROOT <proto root folder> PROTO <path of the .proto under ROOT>): a static
# library of the C++ code protoc and the gRPC plugin generate for one .proto file.
function(vqd_grpc_library name)
  cmake_parse_arguments(ARG "" "ROOT;PROTO" "" ${ARGN})
  get_filename_component(stem ${ARG_PROTO} NAME_WE)
  get_filename_component(subdir ${ARG_PROTO} DIRECTORY)
  set(out ${CMAKE_CURRENT_BINARY_DIR}/gen)
  set(srcs ${out}/${subdir}/${stem}.pb.cc ${out}/${subdir}/${stem}.grpc.pb.cc)
  set(hdrs ${out}/${subdir}/${stem}.pb.h ${out}/${subdir}/${stem}.grpc.pb.h)
  # On the GPU host protoc must be Debian's, matching the unpacked protobuf headers.
  if(VQD_DEPS_PREFIX AND EXISTS ${VQD_DEPS_PREFIX}/bin/protoc)
    set(protoc ${VQD_DEPS_PREFIX}/bin/protoc)
  else()
    set(protoc $<TARGET_FILE:protobuf::protoc>)
  endif()
  file(MAKE_DIRECTORY ${out})
  add_custom_command(
    OUTPUT ${srcs} ${hdrs}
    COMMAND ${protoc} --proto_path=${ARG_ROOT} --cpp_out=${out} --grpc_out=${out}
            --plugin=protoc-gen-grpc=$<TARGET_FILE:gRPC::grpc_cpp_plugin> ${ARG_ROOT}/${ARG_PROTO}
    DEPENDS ${ARG_ROOT}/${ARG_PROTO}
    COMMENT "Generating C++ code for ${ARG_PROTO}")
  add_library(${name} STATIC ${srcs})
  target_include_directories(${name} PUBLIC ${out})
  target_link_libraries(${name} PUBLIC protobuf::libprotobuf gRPC::grpc++)
  vqd_target_setup(${name} NO_PCH)  # generated code needs no libtorch
  target_compile_options(${name} PRIVATE -w)
endfunction()

# vqd_cuda_library(<name> SOURCES ...): a folder's CUDA kernels (*.cu, beside the operation they
# speed up), compiled by nvcc for CMAKE_CUDA_ARCHITECTURES; the CUDA build only. The kernels include
# ATen and c10 only (no spdlog, abseil or fmt), so PyTorch's bundled headers are all they see; they
# use the CUDA runtime PyTorch uses (shared, torch::cudart).
function(vqd_cuda_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(${name} PUBLIC ${TORCH_LIBRARIES})
  if(TARGET torch::cudart)
    target_link_libraries(${name} PUBLIC torch::cudart)
  endif()
  target_compile_options(${name} PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr>)
  target_compile_definitions(${name} PRIVATE VQD_WITH_CUDA=1)
  set_target_properties(${name} PROPERTIES CUDA_RUNTIME_LIBRARY Shared POSITION_INDEPENDENT_CODE ON)
endfunction()
