# Finds libtorch (Debian's 1.13 for the CPU, or PyTorch's own 2.x with CUDA) and settles what
# depends on which one it is: CUDA code paths, our own CUDA kernels, and the headers that
# PyTorch's wheels bundle and that would shadow the system's.

# PyTorch's wheels build their CUDA code for TORCH_CUDA_ARCH_LIST; ours follows the same list.
# Hopper (sm_90: H100, H200) is what we serve on; sm_80 keeps A100s working.
if(NOT DEFINED TORCH_CUDA_ARCH_LIST AND NOT DEFINED ENV{TORCH_CUDA_ARCH_LIST})
  set(TORCH_CUDA_ARCH_LIST "8.0;9.0" CACHE STRING "CUDA architectures to build for (PyTorch's notation)")
endif()

# Torch's CMake files warn about and ignore CMAKE_CUDA_ARCHITECTURES; ours is derived from
# TORCH_CUDA_ARCH_LIST below, after them, on every configure.
unset(CMAKE_CUDA_ARCHITECTURES)
unset(CMAKE_CUDA_ARCHITECTURES CACHE)
find_package(Torch REQUIRED)
# TorchConfig looks its libraries up by name, so a system libtorch (Debian's) can win over the one
# whose headers we compile against; refuse such a mix.
get_filename_component(torch_library_dir "${TORCH_LIBRARY}" DIRECTORY)
get_filename_component(torch_library_dir "${torch_library_dir}" REALPATH)
get_filename_component(torch_prefix_lib "${TORCH_INSTALL_PREFIX}/lib" REALPATH)
if(EXISTS "${TORCH_INSTALL_PREFIX}/lib/libtorch.so" AND NOT torch_library_dir STREQUAL torch_prefix_lib)
  message(FATAL_ERROR "libtorch's CMake files are in ${TORCH_INSTALL_PREFIX} but TORCH_LIBRARY is ${TORCH_LIBRARY}: "
                      "add ${TORCH_INSTALL_PREFIX}/lib to CMAKE_LIBRARY_PATH (scripts/dev.sh build-cuda does)")
endif()

# Torch's CUDA support decides whether CUDA-only code paths are compiled in.
if(TORCH_CUDA_LIBRARIES OR TARGET torch_cuda)
  set(VQD_WITH_CUDA ON)
else()
  set(VQD_WITH_CUDA OFF)
endif()
message(STATUS "libtorch ${Torch_VERSION}, CUDA support: ${VQD_WITH_CUDA}")

if(VQD_WITH_CUDA)
  # Our kernels (*.cu beside the operation they speed up) are compiled by nvcc for the same
  # architectures as libtorch's: "8.0;9.0" -> "80;90".
  set(torch_archs ${TORCH_CUDA_ARCH_LIST})
  if(NOT torch_archs)
    set(torch_archs $ENV{TORCH_CUDA_ARCH_LIST})
  endif()
  string(REPLACE " " ";" torch_archs "${torch_archs}")
  set(cuda_archs "")
  foreach(arch IN LISTS torch_archs)
    string(REGEX REPLACE "\\+PTX$" "" arch "${arch}")
    string(REPLACE "." "" arch "${arch}")
    list(APPEND cuda_archs ${arch})
  endforeach()
  set(CMAKE_CUDA_ARCHITECTURES ${cuda_archs} CACHE STRING "From TORCH_CUDA_ARCH_LIST; set that instead" FORCE)
  enable_language(CUDA)
  set(CMAKE_CUDA_STANDARD 17)
  set(CMAKE_CUDA_STANDARD_REQUIRED ON)
  message(STATUS "CUDA kernels for architectures ${CMAKE_CUDA_ARCHITECTURES} (nvcc ${CMAKE_CUDA_COMPILER_VERSION})")
endif()

# PyTorch 2.x wheels ship fmt and protobuf headers of their own versions in their include folder,
# which the compiler searches before the system's. Our code must see the versions of the libraries
# it links (Debian's fmt 9 under spdlog, Debian's protobuf under the generated gRPC code), so a folder
# of links to those comes first. With VQD_DEPS_PREFIX set, that prefix's include folder comes first
# already (see the top CMakeLists) and no links are needed.
set(VQD_SYSTEM_FIRST_INCLUDE "")
if(NOT VQD_DEPS_PREFIX)
  set(shadow_dir ${CMAKE_BINARY_DIR}/system-first-include)
  foreach(sub fmt google)
    set(shadowed OFF)
    foreach(dir IN LISTS TORCH_INCLUDE_DIRS)
      if(EXISTS ${dir}/${sub} AND NOT dir STREQUAL "/usr/include")
        set(shadowed ON)
      endif()
    endforeach()
    if(shadowed AND EXISTS /usr/include/${sub})
      file(MAKE_DIRECTORY ${shadow_dir})
      file(CREATE_LINK /usr/include/${sub} ${shadow_dir}/${sub} SYMBOLIC)
      set(VQD_SYSTEM_FIRST_INCLUDE ${shadow_dir})
      message(STATUS "libtorch bundles ${sub}/ headers; the system's /usr/include/${sub} comes first")
    endif()
  endforeach()
endif()

# PyTorch's libtorch.so defines std::filesystem functions of its own (remove_all among them),
# and its copy crashes when called from our programs (seen: a null call inside remove_all at
# exit). Programs resolve a symbol from the first library that defines it, in the order the
# linker recorded them; naming libstdc++ before everything else makes its definitions win.
if(Torch_VERSION VERSION_GREATER_EQUAL 2)
  string(APPEND CMAKE_EXE_LINKER_FLAGS " -Wl,--push-state,--no-as-needed -lstdc++ -Wl,--pop-state")
endif()
